Feature: Closing and reopening a case
  As a case worker of a national information bureau,
  I want to close a case when there is nothing more to do for the person, and reopen it when news comes,
  so that our open work is accurate, and a closed case takes no new facts by mistake.

  Background:
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to the ICRC

  Scenario: A closed case refuses custody facts until it is reopened
    When the case worker closes the case, because "the family withdrew the tracing request"
    Then the register answers 201
    And the case is at version 3
    And the person's status is "closed"

    When the case worker records that AZ held the person at "Baku" on 2021-02-01, according to the ICRC
    Then the register answers 409 "invalid-transition"
    And nothing was recorded: the case is still at version 3

    When the case worker reopens the case, because "the ICRC reports him still held"
    Then the register answers 201
    And the case is at version 4
    And the person's status is "held"
    And the person is held by AZ at "Hadrut"

    When the case worker records that AZ held the person at "Baku" on 2021-02-01, according to the ICRC
    Then the register answers 201
    And the case is at version 5
    And the person is held by AZ at "Baku"

  Scenario: Only a closed case can be reopened
    When the case worker reopens the case, because "new information"
    Then the register answers 409 "invalid-transition"
    And nothing was recorded: the case is still at version 2
