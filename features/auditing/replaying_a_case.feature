Feature: Replaying a case
  As an auditor for a commission of inquiry,
  I want to replay a case's history, every entry oldest first with who recorded it, when, on whose word, and its link in the register's hash chain,
  so that I can reconstruct what the bureau was told and when, and check each entry against the chain.

  A transfer reported by the press proves wrong and is retracted: the history still
  shows it, next to the retraction that corrects it.

  Background:
    Given the case worker has opened a case for the prisoner of war "Vahe Probikyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to the ICRC
    And the case worker has recorded that AZ handed the person over to RU at "Goris" on 2020-12-01, according to the press
    And the case worker has recorded that the ICRC visited the person held by AZ at "Baku" on 2020-12-10
    And the case worker has retracted version 3, because "the newspaper confused him with another prisoner"

  Scenario: Every entry, oldest first, with who recorded it, when, on whose word, and its hash
    When the auditor reads the case's history
    Then the register answers 200
    And the history lists 5 events, oldest first
    And every event in the history names who recorded it: "worker-1" of "org-a"
    And the history's entries were recorded in the order they are listed
    And event 1 of the history is "opened", reported by the family
    And event 2 of the history is "captured" on 2020-11-09, according to the ICRC
    And event 3 of the history is "transferred" on 2020-12-01, according to the press
    And event 4 of the history is "visited" on 2020-12-10, according to the ICRC
    And every event in the history carries its own hash in the register's chain

  Scenario: A retracted entry is shown with the retraction that corrects it
    When the auditor reads the case's history
    Then the register answers 200
    And event 3 of the history is "transferred", retracted by event 5
    And event 3 of the history still shows to_party "RU"
    And event 5 of the history is "retracted", and it stands
    And event 5 of the history still shows version "3"
    And event 5 of the history still shows reason "the newspaper confused him with another prisoner"
    And event 2 of the history is "captured", and it stands
    And event 4 of the history is "visited", and it stands

  Scenario: The history's last hash is the head of the register's chain
    When the auditor verifies the register
    Then the register answers 200
    And the register's chain holds, over 5 events
    And the chain's head is the hash of the case's last event in its history

  Scenario: A case nobody opened has no history
    When the auditor reads the history of a case nobody opened
    Then the register answers 404 "not-found"
