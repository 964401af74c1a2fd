Feature: Verifying the register
  As an auditor who does not trust the people who run the server,
  I want to check the register's whole hash chain, and check it against a signed checkpoint I kept,
  so that I can prove that the register's history was not altered after the fact.

  Background:
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to the ICRC
    And the case worker has opened a case for the civilian internee "Narek Probyan", a national of AM
    And the case worker has recorded that AZ held the person at "Baku" on 2020-12-01, according to the ICRC

  Scenario: The auditor verifies the whole register
    When the auditor verifies the register
    Then the register answers 200
    And the register's chain holds, over 4 events
    And the chain's head is the hash of the case's last event in its history

  Scenario: A case worker may not verify the register
    When the case worker verifies the register
    Then the register answers 403 "forbidden"

  Scenario: The auditor verifies the register against a checkpoint they kept
    Given the admin has made a checkpoint, and the auditor has kept it
    And the case worker has recorded that AZ moved the person to "Ganja" on 2020-12-20, according to the ICRC
    When the auditor verifies the register against the checkpoint they kept
    Then the register answers 200
    And the register's chain holds, over 5 events
    And the chain agrees with the kept checkpoint and every checkpoint the register lists

  Scenario: A checkpoint signs the chain as it stood when it was made
    When the admin makes a checkpoint
    Then the register answers 201
    And the checkpoint signs position 4, whose hash is that of the case's last event in its history
    And the register lists that checkpoint to the auditor

  Scenario: A kept checkpoint whose head was altered is not taken on trust
    Given the admin has made a checkpoint, and the auditor has kept it
    When the auditor verifies the register against the checkpoint they kept, its head altered
    Then the register answers 200
    And the register's chain is found broken at position 4
    And the problem named is "signature does not hold"

  Scenario: Neither a case worker nor an auditor may make a checkpoint
    When the case worker makes a checkpoint
    Then the register answers 403 "forbidden"
    When the auditor makes a checkpoint
    Then the register answers 403 "forbidden"
